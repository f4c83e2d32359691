<?php

use Illuminate\Database\Migrations\Migration;
use Illuminate\Database\Schema\Blueprint;
use Illuminate\Support\Facades\Schema;

/*
 * Evidence tables: the queued job writes job_marks, the scheduled task
 * writes schedule_marks.
 */
return new class extends Migration
{
    public function up()
    {
        Schema::create('job_marks', function (Blueprint $table) {
            $table->id();
            $table->string('note');
            $table->string('handled_at');
            $table->unsignedInteger('pid');
        });

        Schema::create('schedule_marks', function (Blueprint $table) {
            $table->id();
            $table->string('ran_at');
            $table->unsignedInteger('pid');
        });
    }

    public function down()
    {
        Schema::dropIfExists('schedule_marks');
        Schema::dropIfExists('job_marks');
    }
};
